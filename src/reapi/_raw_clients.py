"""`client.with_raw_response.<resource>.<method>(...)`: each method returns a `RawResponse`.

Only the methods that are one HTTP call are here (not `wait` or `create_and_wait`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._raw import raw_async, raw_sync

if TYPE_CHECKING:
    from ._client import AsyncReAPI, ReAPI
    from .resources.images import AsyncImages, Images
    from .resources.models import AsyncModels, Models
    from .resources.videos import AsyncVideos, Videos

__all__ = ["AsyncReAPIWithRawResponse", "ReAPIWithRawResponse"]


class ImagesWithRawResponse:
    def __init__(self, images: Images) -> None:
        self.generate = raw_sync(images.generate)
        self.edit = raw_sync(images.edit)


class VideosWithRawResponse:
    def __init__(self, videos: Videos) -> None:
        self.create = raw_sync(videos.create)
        self.retrieve = raw_sync(videos.retrieve)
        self.list = raw_sync(videos.list)
        self.delete = raw_sync(videos.delete)
        self.download_content = raw_sync(videos.download_content)


class ModelsWithRawResponse:
    def __init__(self, models: Models) -> None:
        self.list = raw_sync(models.list)


class ReAPIWithRawResponse:
    def __init__(self, client: ReAPI) -> None:
        self.images = ImagesWithRawResponse(client.images)
        self.videos = VideosWithRawResponse(client.videos)
        self.models = ModelsWithRawResponse(client.models)


class AsyncImagesWithRawResponse:
    def __init__(self, images: AsyncImages) -> None:
        self.generate = raw_async(images.generate)
        self.edit = raw_async(images.edit)


class AsyncVideosWithRawResponse:
    def __init__(self, videos: AsyncVideos) -> None:
        self.create = raw_async(videos.create)
        self.retrieve = raw_async(videos.retrieve)
        self.list = raw_async(videos.list)
        self.delete = raw_async(videos.delete)
        self.download_content = raw_async(videos.download_content)


class AsyncModelsWithRawResponse:
    def __init__(self, models: AsyncModels) -> None:
        self.list = raw_async(models.list)


class AsyncReAPIWithRawResponse:
    def __init__(self, client: AsyncReAPI) -> None:
        self.images = AsyncImagesWithRawResponse(client.images)
        self.videos = AsyncVideosWithRawResponse(client.videos)
        self.models = AsyncModelsWithRawResponse(client.models)

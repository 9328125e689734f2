"""What instances of a fleet share through Redis, when there is one (`redis_url`): global rate
limits, circuit breaker state and wake-ups. Without Redis, or while it is down, each instance
keeps working on its own, as a single process does."""

from .link import RedisLink, open_link

__all__ = ["RedisLink", "open_link"]

"""What every JSON API of the gateway shares (/v1 and the management API): errors in OpenAI's
shape, bounded request bodies, validation messages and orjson answers. Neither surface imports
the other; both import this."""

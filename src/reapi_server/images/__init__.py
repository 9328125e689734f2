"""Image generation and edits through the core, with credit holds, mirroring and usage rows."""

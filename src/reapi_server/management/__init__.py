"""The management API (/api): keys, usage and balance for automation, beside the pages that do
the same through the same services."""

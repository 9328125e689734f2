"""What operators do without SQL: look accounts and people up, correct credit, disable or
enable an account, delete a person, make an admin. The admin pages and `reapi-server` call the
same functions; each action writes its audit row in the transaction that does it."""

"""Port implementations: ``local`` (filesystem, SQLite, MQTT, outbox) and ``aws`` (boto3)."""

"""SQL persistence: ORM models (`models`), engine/migrations (`engine`), queries (`repository`)."""

"""RecordRoom: the system of record of a health information management department."""

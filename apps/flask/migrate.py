"""The release command: creates the tables the app needs (idempotent)."""
from visits import Base, engine

Base.metadata.create_all(engine)
print("tables:", ", ".join(sorted(Base.metadata.tables)))

"""A Flask app with SQLAlchemy, deployed by foobar: every page view is a
row in MariaDB. The database settings come from foobar's app.env."""
import os
from datetime import datetime, timezone

from flask import Flask, jsonify
from sqlalchemy import DateTime, Integer, String, create_engine, func, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Visit(Base):
    __tablename__ = "visits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime)


def database_url() -> URL:
    query = {"charset": "utf8mb4"}
    if not os.environ.get("DB_HOST"):
        query["unix_socket"] = os.environ["DB_SOCKET"]
    return URL.create(
        "mysql+pymysql",
        username=os.environ["DB_USER"],
        password=os.environ["DB_PASSWORD"],
        host=os.environ.get("DB_HOST"),
        port=int(os.environ["DB_PORT"]) if os.environ.get("DB_PORT") else None,
        database=os.environ["DB_NAME"],
        query=query,
    )


engine = create_engine(database_url(), pool_pre_ping=True)
app = Flask(__name__)
GREETING = "Hello from Flask"


@app.get("/")
def index():
    with Session(engine) as s:
        s.add(Visit(path="/", at=datetime.now(timezone.utc)))
        s.commit()
        n = s.scalar(select(func.count()).select_from(Visit))
    return f"<h1>{GREETING}</h1><p>{n} visits</p>"


@app.get("/healthz")
def healthz():
    with Session(engine) as s:
        s.execute(select(1))
    # SITE_NAME (app.env), as the app reads it.
    return jsonify(status="ok", site=os.environ.get("SITE_NAME"))


@app.get("/visits")
def visits():
    with Session(engine) as s:
        n = s.scalar(select(func.count()).select_from(Visit))
    return jsonify(visits=n)

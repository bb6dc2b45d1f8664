"""The foobar sample application (WSGI, run by gunicorn).

nginx serves the files in static/ itself; every other request comes here.
  /healthz  answers without the database: proves nginx -> app server.
  /visits   counts a visit in MySQL and returns the count: proves
            nginx -> app server -> database.
"""

import json
import os

import pymysql


def _connect():
    # DB_HOST when the database is on another server, its socket otherwise.
    where = (
        {"host": os.environ["DB_HOST"], "port": int(os.environ.get("DB_PORT", "3306"))}
        if os.environ.get("DB_HOST")
        else {"unix_socket": os.environ.get("DB_SOCKET", "/run/mysqld/mysqld.sock")}
    )
    # A Galera cluster takes TLS only: its members' certificates are
    # verified against the cluster's CA.
    if os.environ.get("DB_SSL_CA"):
        where["ssl"] = {"ca": os.environ["DB_SSL_CA"]}
    return pymysql.connect(
        **where,
        user=os.environ["DB_USER"],
        password=os.environ["DB_PASSWORD"],
        database=os.environ["DB_NAME"],
        autocommit=True,
        # PyMySQL's and Django's 10 s: the handshake includes TLS, and a
        # connection HAProxy retries on another member while the cluster
        # moves its writer takes a few seconds on a busy machine.
        connect_timeout=10,
    )


# MariaDB's "deadlock found": on a Galera cluster also a write that lost
# certification to a write on another member (for a moment, while the
# load balancers move the writer); the transaction was rolled back, so it
# is safe to run again, as Galera's documentation asks of applications.
DEADLOCK = 1213
ATTEMPTS = 3

# The table is made once per worker, not at every request: on a Galera
# cluster every DDL statement, even one with nothing to do, runs in total
# order and aborts the writes in flight.
_table_ready = False


def count_visit():
    for attempt in range(ATTEMPTS):
        try:
            return _count_visit()
        except pymysql.err.OperationalError as exc:
            if not (exc.args and exc.args[0] == DEADLOCK) or attempt == ATTEMPTS - 1:
                raise


def _count_visit():
    global _table_ready
    conn = _connect()
    try:
        with conn.cursor() as cur:
            if not _table_ready:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS visits (id INT PRIMARY KEY, count BIGINT NOT NULL)"
                )
                _table_ready = True
            cur.execute(
                "INSERT INTO visits (id, count) VALUES (1, 1) "
                "ON DUPLICATE KEY UPDATE count = count + 1"
            )
            cur.execute("SELECT count FROM visits WHERE id = 1")
            return cur.fetchone()[0]
    finally:
        conn.close()


def _json(start_response, status, body):
    data = (json.dumps(body) + "\n").encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            # The app's own policy: nginx adds its default only where an
            # app sends none.
            ("Referrer-Policy", "no-referrer"),
        ],
    )
    return [data]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        return _json(start_response, "200 OK", {"status": "ok"})
    if path == "/visits":
        try:
            count = count_visit()
        except Exception as exc:  # the check names the database hop
            return _json(
                start_response,
                "503 Service Unavailable",
                {
                    "error": "database unavailable",
                    "kind": type(exc).__name__,
                    # MariaDB's error number (1213: deadlock, 2013: lost
                    # connection, ...), which says what went wrong.
                    "code": exc.args[0] if exc.args and isinstance(exc.args[0], int) else None,
                },
            )
        return _json(
            start_response,
            "200 OK",
            {"visits": count, "database": os.environ["DB_NAME"]},
        )
    return _json(start_response, "404 Not Found", {"error": "not found", "path": path})

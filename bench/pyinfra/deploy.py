"""The stack job of `foobar provision`, written the way a pyinfra user would.
The config files are the ones foobar renders (RENDERED), so all three tools
deploy the same bytes."""

import os

from pyinfra.operations import apt, files, mysql, server, systemd

R = os.environ["RENDERED"]
APP = os.environ["APP_SOURCE"]
PASSWORD = os.environ["FOOBAR_DB_PASSWORD"]
HERE = os.path.dirname(os.path.abspath(__file__))

apt.packages(
    name="packages",
    packages=["bind9", "bind9-utils", "mariadb-server", "mariadb-client", "gunicorn", "python3-pymysql", "nginx"],
    update=True,
    cache_time=3600,
)
bind = [
    files.template(name="named.conf.options", src=f"{R}/etc/bind/named.conf.options", dest="/etc/bind/named.conf.options", group="bind", mode="644"),
    files.template(name="zone", src=f"{R}/var/lib/bind/db.foobar.com", dest="/var/lib/bind/db.foobar.com", group="bind", mode="644"),
    files.template(name="named.conf.local", src=f"{R}/etc/bind/named.conf.local", dest="/etc/bind/named.conf.local", group="bind", mode="644"),
]
systemd.service(name="named running", service="named", running=True, enabled=True)
systemd.service(name="reload bind", service="named", reloaded=True, _if=[op.did_change for op in bind])

mycnf = files.template(name="mariadb config", src=f"{R}/etc/mysql/mariadb.conf.d/60-foobar.cnf", dest="/etc/mysql/mariadb.conf.d/60-foobar.cnf", mode="644")
systemd.service(name="mariadb running", service="mariadb", running=True, enabled=True)
mysql.database(name="database", database="foobar")
mysql.user(name="database user", user="foobar", user_hostname="localhost", password=PASSWORD)
mysql.privileges(
    name="grants",
    user="foobar",
    user_hostname="localhost",
    database="foobar",
    privileges=["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "INDEX", "ALTER"],
)
systemd.service(name="restart mariadb", service="mariadb", restarted=True, _if=mycnf.did_change)

server.user(name="app user", user="foobar", system=True, home="/srv/foobar", create_home=False, shell="/usr/sbin/nologin")
for d in ["/srv/foobar", "/srv/foobar/releases", "/etc/foobar"]:
    files.directory(name=f"folder {d}", path=d, mode="755")
app = [
    files.template(name="app environment", src=f"{HERE}/../app.env.j2", dest="/etc/foobar/app.env", mode="600", db_password=PASSWORD),
    files.sync(name="code base", src=APP, dest="/srv/foobar/releases/bench"),
    files.link(name="current release", path="/srv/foobar/current", target="releases/bench"),
    files.template(name="app unit", src=f"{R}/etc/systemd/system/foobar-app.service", dest="/etc/systemd/system/foobar-app.service", mode="644"),
]
systemd.service(name="app running", service="foobar-app", running=True, enabled=True, daemon_reload=True)
systemd.service(name="restart app", service="foobar-app", restarted=True, daemon_reload=True, _if=[op.did_change for op in app])

web = [
    files.link(name="no default site", path="/etc/nginx/sites-enabled/default", present=False),
    files.template(name="site", src=f"{R}/etc/nginx/sites-enabled/foobar.conf", dest="/etc/nginx/sites-enabled/foobar.conf", mode="644"),
]
systemd.service(name="nginx running", service="nginx", running=True, enabled=True)
systemd.service(name="reload nginx", service="nginx", reloaded=True, _if=[op.did_change for op in web])

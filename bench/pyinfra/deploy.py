"""The job of foobar's first `provision` of web1, written the way a pyinfra
user would: the security updates, the hardening, BIND, MariaDB, the app
under gunicorn, nginx, sshd keys only. The config files are the ones foobar
renders (RENDERED), uploaded byte for byte, and the code base goes where
foobar puts it (RELEASE, RELEASE_VENV: bench/run.sh reads them off a server foobar
provisioned), so all three tools leave the same state and foobar finds
nothing to change after this deploy."""

import io
import os

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.apt import noninteractive_apt
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, mysql, server, systemd
from pyinfra.operations.util import any_changed

R = os.environ["RENDERED"]
APP = os.environ["APP_SOURCE"]
PASSWORD = os.environ["FOOBAR_DB_PASSWORD"]
# foobar's release folder name (its content hash) and its virtualenv's
# (`<hash>-python3.X`), as `readlink` shows them on a server it provisioned.
RELEASE = os.environ["RELEASE"]
VENV = os.environ["RELEASE_VENV"]
REL = f"/srv/foobar/releases/{RELEASE}"

# The packages whose update comes from the security suite: foobar's
# security_updates step asks apt the same way.
PENDING = (
    "apt-get -s -o Debug::NoLocking=1 dist-upgrade 2>/dev/null"
    " | sed -n 's/^Inst \\([^ ]*\\) .*-security[] ,].*/\\1/p'"
)


@operation()
def security_updates():
    """The security suite's updates, then none left (a held package fails).
    Asked when the operation runs, after the package lists were fetched."""
    pending = (host.get_fact(Command, PENDING) or "").split()
    if not pending:
        host.noop("no security updates pending")
        return
    yield noninteractive_apt("install --only-upgrade --no-install-recommends " + " ".join(pending))
    yield f'left=$({PENDING}); [ -z "$left" ] || {{ echo "security updates not applied: $left" >&2; exit 1; }}'


@operation()
def virtualenv_without_pip(path: str, group: str):
    """A virtualenv as foobar makes one: the system's packages, no pip of
    its own, site-packages at a fixed path, the app's group's only."""
    if host.get_fact(File, path=f"{path}/.foobar-ready"):
        host.noop(f"virtualenv {path} exists")
        return
    yield f"rm -rf {path}"
    yield f"python3 -m venv --system-site-packages --without-pip {path}"
    yield f'ln -sfn "$(cd {path} && echo lib/python3*/site-packages)" {path}/site-packages'
    yield f"chown -R root:{group} {path}"
    yield f"chmod -R o= {path}"
    yield f"touch {path}/.foobar-ready"


def rendered(path, **kwargs):
    """The file foobar renders for `path`, uploaded there (root's, 0644 unless told)."""
    kwargs = {"user": "root", "group": "root", "mode": "644", **kwargs}
    return files.put(name=path, src=f"{R}{path}", dest=path, **kwargs)


# The packages of foobar's apt steps on web1 (roles all, dns, db, app, web),
# without recommends as foobar installs them.
apt.packages(
    name="packages",
    packages=["unattended-upgrades", "libpam-tmpdir", "libpam-passwdqc", "debsums", "bind9", "bind9-utils",
              "mariadb-server", "mariadb-client", "gunicorn", "python3-pymysql", "python3-venv", "nginx"],
    no_recommends=True,
    update=True,
    cache_time=3600,
)

# Role all (os.security_updates): the security suite's updates, and apt's
# daily timers apply them from then on (unattended-upgrades).
rendered("/etc/apt/apt.conf.d/52foobar-unattended-upgrades")
security_updates(name="security updates")

# Role all (os.harden). As foobar: a sysctl setting this server may not
# change (a container, whose kernel is its host's) is in the file but not
# set live.
with open(f"{R}/etc/sysctl.d/60-foobar.conf") as f:
    SYSCTL = dict(line.split(" = ", 1) for line in f.read().splitlines() if line and not line.startswith("#"))
PROC = {key: "/proc/sys/" + key.replace(".", "/") for key in SYSCTL}
WRITABLE = set(
    (host.get_fact(Command, f"for p in {' '.join(PROC.values())}; do [ -w \"$p\" ] && echo \"$p\"; done; true") or "").split()
)
rendered("/etc/sysctl.d/60-foobar.conf")
for key, value in SYSCTL.items():
    if PROC[key] in WRITABLE:
        server.sysctl(name=f"sysctl {key}", key=key, value=value)
for path in ["/etc/modprobe.d/60-foobar.conf", "/etc/security/limits.d/60-foobar.conf",
             "/etc/systemd/coredump.conf.d/60-foobar.conf", "/etc/profile.d/60-foobar.sh", "/etc/login.defs"]:
    rendered(path)

# Role dns. named-checkconf -z checks the whole config and the zones.
bind = [
    rendered("/etc/bind/named.conf.options", group="bind"),
    rendered("/etc/bind/foobar-transfer.key", group="bind", mode="640"),
    rendered("/var/lib/bind/db.foobar.com", group="bind"),
    rendered("/etc/bind/named.conf.local", group="bind"),
]
bind_sandbox = rendered("/etc/systemd/system/named.service.d/60-foobar-sandbox.conf")
server.shell(name="check bind", commands=["named-checkconf -z"], _if=any_changed(*bind, bind_sandbox))
systemd.service(name="named running", service="named", running=True, enabled=True)
systemd.service(name="restart bind", service="named", restarted=True, daemon_reload=True, _if=bind_sandbox.did_change)
systemd.service(name="reload bind", service="named", reloaded=True, _if=any_changed(*bind))

# Role db. ALL on the database is foobar's list of 19 privileges (MariaDB
# 10.11: every database privilege but GRANT OPTION); SHOW GRANTS says ALL
# PRIVILEGES for that list, so naming them one by one would revoke and grant
# them again on every run.
mariadb = [
    rendered("/etc/mysql/mariadb.conf.d/60-foobar.cnf"),
    rendered("/etc/systemd/system/mariadb.service.d/60-foobar-sandbox.conf"),
]
systemd.service(name="mariadb running", service="mariadb", running=True, enabled=True)
mysql.database(name="database", database="foobar", charset="utf8mb4", collate="utf8mb4_unicode_ci")
mysql.user(name="database user", user="foobar", user_hostname="localhost", password=PASSWORD)
mysql.privileges(name="grants", user="foobar", user_hostname="localhost", database="foobar", privileges="ALL")
systemd.service(name="restart mariadb", service="mariadb", restarted=True, daemon_reload=True, _if=any_changed(*mariadb))

# Role app. app.env as foobar writes it: render masks the password, which
# goes in double quotes with ", \, $ and ` escaped by a backslash.
server.user(name="app user", user="foobar", system=True, home="/srv/foobar", create_home=False,
            ensure_home=False, shell="/usr/sbin/nologin")
for d in ["/srv/foobar", "/etc/foobar"]:
    files.directory(name=f"folder {d}", path=d, user="root", group="root", mode="755")
with open(f"{R}/etc/foobar/app.env") as f:
    escaped = "".join("\\" + c if c in '"\\$`' else c for c in PASSWORD)
    APP_ENV = f.read().replace('DB_PASSWORD="********"', f'DB_PASSWORD="{escaped}"')
# The releases are the app's group's alone (nginx reads the static files
# through it); each links a virtualenv made without pip, as foobar's.
for d in ["/srv/foobar/releases", "/srv/foobar/venvs"]:
    files.directory(name=f"folder {d}", path=d, user="root", group="foobar", mode="750")
app = [
    files.put(name="app environment", src=io.StringIO(APP_ENV), dest="/etc/foobar/app.env",
              user="root", group="root", mode="600"),
    files.sync(name="code base", src=APP, dest=REL, user="root", group="foobar", mode="640", dir_mode="750"),
]
virtualenv_without_pip(name="virtualenv", path=f"/srv/foobar/venvs/{VENV}", group="foobar")
files.link(name="release's virtualenv", path=f"{REL}/.venv", target=f"../../venvs/{VENV}", user="root", group="foobar")
# foobar's marks of a complete release, and of one that went live.
for mark in [".foobar-ready", ".foobar-live"]:
    files.file(name=f"release {mark}", path=f"{REL}/{mark}", user="root", group="root", mode="644")
app += [
    files.link(name="current release", path="/srv/foobar/current", target=f"releases/{RELEASE}"),
    rendered("/etc/foobar/gunicorn.conf.py"),
    rendered("/etc/systemd/system/foobar-app.service"),
]
systemd.service(name="app running", service="foobar-app", running=True, enabled=True, daemon_reload=True)
systemd.service(name="restart app", service="foobar-app", restarted=True, daemon_reload=True, _if=any_changed(*app))

# Role web.
www_data = server.user(name="nginx's user in the app's group", user="www-data", groups=["foobar"], append=True,
                       ensure_home=False)
files.directory(name="maintenance folder", path="/var/lib/foobar/maintenance", user="root", group="root", mode="755")
rendered("/var/lib/foobar/maintenance/index.html")
files.file(name="no flag of an unfinished database restart", path="/var/lib/foobar/maintenance/restarting",
           present=False)
web = [
    files.link(name="no default site", path="/etc/nginx/sites-enabled/default", present=False),
    rendered("/etc/nginx/sites-enabled/foobar.conf"),
]
nginx_restart = [www_data, rendered("/etc/systemd/system/nginx.service.d/60-foobar-sandbox.conf")]
server.shell(name="check nginx", commands=["nginx -t"], _if=any_changed(*web, *nginx_restart))
systemd.service(name="nginx running", service="nginx", running=True, enabled=True)
systemd.service(name="restart nginx", service="nginx", restarted=True, daemon_reload=True,
                _if=any_changed(*nginx_restart))
systemd.service(name="reload nginx", service="nginx", reloaded=True, _if=any_changed(*web))

# Role all (ssh.harden), last: keys only, checked before the reload.
sshd = rendered("/etc/ssh/sshd_config.d/60-foobar.conf")
server.shell(name="check sshd", commands=["sshd -t"], _if=sshd.did_change)
systemd.service(name="reload ssh", service="ssh", reloaded=True, _if=sshd.did_change)

# What foobar records of this state on the server, read by its check
# afterwards: the security updates were checked (they were, above) and
# MariaDB ran on its data directory. Nothing else reads them.
for record in ["/var/lib/foobar/security-updates.checked", "/var/lib/foobar/mariadb-ran"]:
    files.file(name=record, path=record, user="root", group="root", mode="644")

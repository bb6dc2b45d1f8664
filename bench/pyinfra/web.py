"""A web/app server of the HA design, as a pyinfra user would write it, for
bench/scale.sh: the files foobar renders for each server, the code base
under foobar's release name, so the three tools keep one state."""

import os

from pyinfra import host
from pyinfra.operations import apt, files, server, systemd

R = os.path.join(os.environ["RENDERED_ROOT"], host.name)
APP = os.environ["APP_SOURCE"]
RELEASE = os.environ["RELEASE"]

apt.packages(name="packages", packages=["gunicorn", "python3-pymysql", "nginx"], update=True, cache_time=3600)
server.user(name="app user", user="foobar", system=True, home="/srv/foobar", create_home=False, shell="/usr/sbin/nologin")
for d in ["/srv/foobar", "/srv/foobar/releases", "/etc/foobar", "/var/lib/foobar/maintenance"]:
    files.directory(name=f"folder {d}", path=d, user="root", group="root", mode="755")
app = [
    files.put(name="app environment", src=f"{R}/etc/foobar/app.env", dest="/etc/foobar/app.env", mode="600"),
    files.sync(name="code base", src=APP, dest=f"/srv/foobar/releases/{RELEASE}"),
    files.link(name="current release", path="/srv/foobar/current", target=f"releases/{RELEASE}"),
    files.put(name="app unit", src=f"{R}/etc/systemd/system/foobar-app.service", dest="/etc/systemd/system/foobar-app.service", mode="644"),
]
systemd.service(name="app running", service="foobar-app", running=True, enabled=True, daemon_reload=True)
systemd.service(name="restart app", service="foobar-app", restarted=True, daemon_reload=True, _if=[op.did_change for op in app])
files.put(name="maintenance page", src=f"{R}/var/lib/foobar/maintenance/index.html", dest="/var/lib/foobar/maintenance/index.html", mode="644")
web = [
    files.link(name="no default site", path="/etc/nginx/sites-enabled/default", present=False),
    files.put(name="site", src=f"{R}/etc/nginx/sites-enabled/foobar.conf", dest="/etc/nginx/sites-enabled/foobar.conf", mode="644"),
]
systemd.service(name="nginx running", service="nginx", running=True, enabled=True)
systemd.service(name="reload nginx", service="nginx", reloaded=True, _if=[op.did_change for op in web])

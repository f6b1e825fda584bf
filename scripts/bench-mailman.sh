#!/usr/bin/env bash
# The Mailman side of the lists benchmark (docs/benchmarks.md, "Lists"):
# GNU Mailman 3 from Debian (apt-get install --no-install-recommends
# mailman3), run from a private config in a scratch directory, everything on
# loopback, as ../shared/recipes/mailman3.md describes. Run by hand, as root
# (Mailman's processes run as the user list):
#
#   scripts/bench-mailman.sh                      # defaults below
#   SUBSCRIBE=5000 FANOUT="1000 3000" scripts/bench-mailman.sh
#
# 1. Subscribes SUBSCRIBE members to an empty list, one REST call each
#    (POST /3.1/members, pre_verified/pre_confirmed/pre_approved, no welcome
#    message), one caller, printing members/s per 1,000.
# 2. For each size in FANOUT, a list of that many members (added by
#    `mailman addmembers`: setup, not measured), personalize=individual with
#    VERP (verp_personalized_deliveries) and a footer naming the member; one
#    post over LMTP (127.0.0.1:8024) from a non-member the list accepts;
#    timed from the end of DATA until the SMTP sink counted every copy. Peak
#    RSS: the sum over Mailman's processes sampled every 0.2 s, and each
#    runner's VmHWM, reset (/proc/PID/clear_refs) just before the post.
#
# The SMTP sink (services/cmd/smtpsink on 127.0.0.1:8025, counts on :8026)
# is the one the lists service's benchmark sends into; this script starts
# it unless one answers already.
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBE=${SUBSCRIBE:-5000}
FANOUT=${FANOUT:-1000 3000}
S=${S:-/tmp/mailman-bench}
SINK_HTTP=127.0.0.1:8026

[ "$(id -u)" = 0 ] || { echo "run as root: Mailman runs as the user list"; exit 1; }
command -v mailman >/dev/null || { echo "mailman is missing: apt-get install --no-install-recommends mailman3"; exit 1; }

sink=
if ! curl -sf http://$SINK_HTTP/ >/dev/null; then
	(cd services && go build -o ../bin/smtpsink ./cmd/smtpsink)
	bin/smtpsink -addr 127.0.0.1:8025 -http $SINK_HTTP >/tmp/smtpsink-mailman.log 2>&1 &
	sink=$!
	for _ in $(seq 50); do curl -sf http://$SINK_HTTP/ >/dev/null && break; sleep 0.1; done
fi

mm() { runuser -u list -- mailman -C "$S/mailman.cfg" "$@"; }
stop() {
	[ -f "$S/master.pid" ] && mm stop >/dev/null 2>&1 || true
	[ -n "$sink" ] && kill "$sink" 2>/dev/null || true
}
trap stop EXIT

[ -f "$S/master.pid" ] && mm stop >/dev/null 2>&1 || true
rm -rf "$S"
mkdir -p "$S/var/templates/site/en"
cat >"$S/mailman.cfg" <<CFG
[mailman]
site_owner: postmaster@example.com
layout: bench
[paths.bench]
var_dir: $S/var
bin_dir: /usr/lib/mailman3/bin
log_dir: $S/log
pid_file: $S/master.pid
lock_file: $S/master.lck
[database]
class: mailman.database.sqlite.SQLiteDatabase
url: sqlite:///$S/var/mailman.db
[webservice]
hostname: 127.0.0.1
port: 8001
api_version: 3.1
admin_user: restadmin
admin_pass: restpass
[mta]
incoming: mailman.mta.postfix.LMTP
outgoing: mailman.mta.deliver.deliver
smtp_host: 127.0.0.1
smtp_port: 8025
lmtp_host: 127.0.0.1
lmtp_port: 8024
configuration: $S/postfix-mailman.cfg
verp_personalized_deliveries: yes
CFG
printf '[postfix]\npostmap_command: /bin/true\ntransport_file_type: hash\n' >"$S/postfix-mailman.cfg"
# The footer of every list: the member's address, as the lists service's
# benchmark footer names it; the sink checks each copy for it.
printf 'You are subscribed as $user_address.\n' >"$S/var/templates/site/en/list:member:generic:footer.txt"
chown -R list:list "$S"
mm start >/dev/null
for _ in $(seq 100); do curl -sf -u restadmin:restpass http://127.0.0.1:8001/3.1/system/versions >/dev/null && break; sleep 0.3; done

echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mailman: $(dpkg-query -W -f '${Version}' mailman3)"

S="$S" SUBSCRIBE="$SUBSCRIBE" FANOUT="$FANOUT" SINK_HTTP="$SINK_HTTP" python3 - <<'PY'
import base64, json, os, smtplib, subprocess, time, urllib.parse, urllib.request

S, sink = os.environ["S"], "http://" + os.environ["SINK_HTTP"]
auth = "Basic " + base64.b64encode(b"restadmin:restpass").decode()

def rest(method, path, **fields):
    data = urllib.parse.urlencode(fields).encode() if fields else None
    req = urllib.request.Request("http://127.0.0.1:8001/3.1/" + path, data=data, method=method, headers={"Authorization": auth})
    with urllib.request.urlopen(req) as r:
        return r.read()

def counts():
    with urllib.request.urlopen(sink + "/") as r:
        return json.load(r)

def mailman_pids():
    """The master, its runners and their children (the REST runner's workers)."""
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                parent[int(p)] = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    pids = [int(open(S + "/master.pid").read())]
    for p in pids:
        pids += [c for c, pp in parent.items() if pp == p]
    return pids

def status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0

def cpu(pids):
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except OSError:
            pass
    return total / tck

def name(pid):
    cmd = open(f"/proc/{pid}/cmdline").read().split("\0")
    return next((a.split("=", 1)[1].split(":")[0] for a in cmd if a.startswith("--runner=")), "master")

rest("POST", "domains", mail_host="example.com")

# 1. Subscribing, one REST call each, one caller.
n = int(os.environ["SUBSCRIBE"])
if n:
    rest("POST", "lists", fqdn_listname="team@example.com")
    print(f"\nsubscribe {n} members over REST, one call each, into team@example.com")
    print(f"{'members':<12} {'members/s':>10} {'Mailman CPU per member':>23}")
    pids = mailman_pids()
    t0, c0 = time.monotonic(), cpu(pids)
    for i in range(n):
        rest("POST", "members", list_id="team.example.com", subscriber=f"m{i:05d}@example.net", pre_verified="true",
             pre_confirmed="true", pre_approved="true", send_welcome_message="false")
        if (i + 1) % 1000 == 0 or i + 1 == n:
            t1, c1 = time.monotonic(), cpu(pids)
            print(f"{i - (i % 1000):>5}-{i + 1:<6} {(i % 1000 + 1) / (t1 - t0):>10.1f} {(c1 - c0) / (i % 1000 + 1) * 1e3:>20.1f} ms", flush=True)
            t0, c0 = t1, c1

# 2. One personalized post per list size.
print("\none post, personalize=individual with VERP and a footer naming the member")
print(f"{'members':>7} {'seconds':>8} {'recipients/s':>12} {'personalized':>12} {'verp':>6} {'RSS sum MiB: before, peak':>26} {'CPU/copy':>9}  runners' peak RSS (VmHWM) MiB")
for size in map(int, os.environ["FANOUT"].split()):
    lname = f"fan{size}"
    rest("POST", "lists", fqdn_listname=f"{lname}@example.com")
    rest("PATCH", f"lists/{lname}.example.com/config", personalize="individual", default_nonmember_action="accept")
    members = "".join(f"f{i:05d}@example.net\n" for i in range(size))
    subprocess.run(["runuser", "-u", "list", "--", "mailman", "-C", S + "/mailman.cfg", "addmembers", "--no-welcome-msg", "-", f"{lname}@example.com"],
                   input=members.encode(), check=True, stdout=subprocess.DEVNULL)
    time.sleep(2)
    urllib.request.urlopen(urllib.request.Request(sink + "/reset", method="POST")).read()
    pids = mailman_pids()
    for p in pids:
        with open(f"/proc/{p}/clear_refs", "w") as f:
            f.write("5")
    before, c0 = sum(status(p, "VmRSS") for p in pids), cpu(pids)
    msg = (f"From: Outsider <outsider@example.org>\r\nTo: {lname}@example.com\r\nSubject: Benchmark post\r\n"
           f"Message-ID: <bench-{lname}-{time.time()}@example.org>\r\nDate: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nWho comes on Friday?\r\n" + "Some text of a post.\r\n" * 20)
    lmtp = smtplib.LMTP("127.0.0.1", 8024)
    lmtp.sendmail("outsider@example.org", [f"{lname}@example.com"], msg)
    wall0, t0 = time.time(), time.monotonic()
    lmtp.quit()
    peak = before
    while True:
        c = counts()
        peak = max(peak, sum(status(p, "VmRSS") for p in pids))
        if c["messages"] >= size:
            break
        if time.monotonic() - t0 > 3600:
            raise SystemExit(f"only {c['messages']} of {size} copies after an hour")
        time.sleep(0.2)
    took = c["last"] - wall0  # from the end of DATA to the sink's last copy
    cpu_copy = (cpu(pids) - c0) / size * 1e3
    hwm = sorted(((status(p, "VmHWM") // 1024, name(p)) for p in pids), reverse=True)
    print(f"{size:>7} {took:>8.1f} {size / took:>12.1f} {c['personalized']:>12} {c['verp']:>6} {before // 1024:>12}, {peak // 1024:<12} {cpu_copy:>6.1f} ms  "
          + ", ".join(f"{n} {m}" for m, n in hwm[:4]), flush=True)
PY

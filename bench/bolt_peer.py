"""The peer the bot is measured against: a Bolt for Python app doing the same job the bot does
when it acknowledges a note -- verify Slack's signature, insert the command durably into SQLite
(WAL, synchronous=FULL, one commit per command), acknowledge. It is served the way Bolt's
documentation recommends for production, by a WSGI server (gunicorn, through Bolt's WSGI
adapter), with one worker per core; its one Web API call (`auth.test`, cached) goes to the same
stand-in as the bot's.

    BOLT_SECRET=... BOLT_DB=file.db BOLT_API=http://127.0.0.1:P/api \\
      python3 -m gunicorn --chdir bench -w 2 -b 127.0.0.1:PORT bolt_peer:application
"""
import os
import sqlite3
import threading
import time

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

db = sqlite3.connect(os.environ["BOLT_DB"], check_same_thread=False, isolation_level=None, timeout=30)
# Both workers start at once on a new file; switching it to WAL does not wait on SQLite's busy
# handler, so the one that finds the other switching is told "database is locked" (seen: a worker
# that failed to boot, and a peer that refused every request).
for attempt in range(100):
    try:
        db.execute("PRAGMA journal_mode=WAL")
        break
    except sqlite3.OperationalError:
        if attempt == 99:
            raise
        time.sleep(0.05)
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE IF NOT EXISTS commands (id INTEGER PRIMARY KEY, user_id TEXT, text TEXT)")
lock = threading.Lock()

app = App(
    signing_secret=os.environ["BOLT_SECRET"],
    client=WebClient(token="xoxb-bench", base_url=os.environ["BOLT_API"].rstrip("/") + "/"),
    token_verification_enabled=False,
    # Acknowledge as soon as the insert is done, in the request's own thread (the default runs
    # the listener on a pool and polls for the acknowledgement every 10 ms).
    process_before_response=os.environ.get("BOLT_PROCESS_BEFORE_RESPONSE", "1") == "1",
)


@app.command("/erlmcp")
def command(ack, command):
    with lock:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO commands (user_id, text) VALUES (?, ?)", (command["user_id"], command["text"]))
        db.execute("COMMIT")
    ack()


application = SlackRequestHandler(app)

import sys, time
from fastapi.testclient import TestClient
from agent_exporter.api.app import create_app
from agent_exporter.config import Settings
app = create_app(Settings(database_url="sqlite:////tmp/b100k.db"))
with TestClient(app) as c:
    end=time.time()+float(sys.argv[2])
    n=0
    while time.time()<end:
        c.get(sys.argv[1]); n+=1
    print(n)

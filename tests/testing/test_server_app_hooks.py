"""SimServer's optional app hooks: an app's own control paths, status faults in its own words,
and redirects (302 with Location) passed through untouched."""

import httpx

from reapi.testing import Fault, SimServer, json_answer


class HookedApp:
    def handle(self, method, path, query, headers, body, *, origin):
        if path == "/go":
            return 302, {"location": origin + "/there"}, b""
        return json_answer(200, {"path": path})

    def control(self, method, path, query, body):
        if path == "/__sim__/mine":
            return json_answer(200, {"method": method, "query": query, "body": body.decode()})
        return None

    def status_fault_answer(self, state):
        if state.fault is Fault.ERROR_500:
            return 500, {"content-type": "text/plain"}, b"own words"
        return None


class PlainApp:
    def handle(self, method, path, query, headers, body, *, origin):
        return json_answer(200, {})


def test_an_app_answers_its_own_control_paths_never_faulted():
    with SimServer(HookedApp()) as sim, httpx.Client() as client:
        sim.faults.set(Fault.ERROR_500)
        mine = client.post(sim.base_url + "/__sim__/mine?a=1", content=b"hi")
        assert mine.status_code == 200
        assert mine.json() == {"method": "POST", "query": "a=1", "body": "hi"}
        assert client.get(sim.base_url + "/__sim__/other").status_code == 404


def test_status_faults_in_the_apps_own_words_else_openais():
    with SimServer(HookedApp()) as sim, httpx.Client() as client:
        sim.faults.set(Fault.ERROR_500, count=1)
        answer = client.get(sim.base_url + "/x")
        assert (answer.status_code, answer.text) == (500, "own words")
        sim.faults.set(Fault.ERROR_503, count=1)  # the app leaves this one to the server
        assert client.get(sim.base_url + "/x").json()["error"]["type"] == "server_error"
    with SimServer(PlainApp()) as sim, httpx.Client() as client:
        sim.faults.set(Fault.ERROR_500, count=1)
        assert client.get(sim.base_url + "/x").json()["error"]["type"] == "server_error"
        assert client.get(sim.base_url + "/__sim__/mine").status_code == 404


def test_a_redirect_keeps_its_status_and_location():
    with SimServer(HookedApp()) as sim, httpx.Client() as client:
        answer = client.get(sim.base_url + "/go")
        assert answer.status_code == 302 and answer.reason_phrase == "Found"
        assert answer.headers["location"] == sim.base_url + "/there"

"""The admin console in real headless Chromium (Debian's chromium and chromium-driver, driven
over WebDriver by Selenium): sign in, exchange a Claude OAuth token for an API key, copy it, use
it with the official `openai` client (its turns run with the exchanged token), watch the worker
busy and a crash appear on the live dashboard, filter and revoke the key with confirmation,
then see the client refused with 401. Screenshots go to docs/images/ for the README.

Chromium trusts exactly the console's generated certificate (its public key hash), nothing
else: no certificate errors are ignored wholesale."""
import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import openai
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import KEY, MASTER, ROOT, TARGET, free_port, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "browser-test-password-1"
OAUTH_TOKEN = "sk-ant-oat01-browser-test-token-ab12"
IMAGES = ROOT / "docs/images"


def spki_hash(cert_pem: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a certificate, as Chromium's
    --ignore-certificate-errors-spki-list takes it."""
    pubkey = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(cert_pem)],
                            check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pubkey,
                         check=True, capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def console():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            raise AssertionError("chromium and chromium-driver are required in CI (.ci/run installs them)")
        pytest.skip("apt-get install chromium chromium-driver")
    tmp = Path(tempfile.mkdtemp())
    port, https_port = free_port(), free_port()
    config = f"""
[server]
host = "127.0.0.1"
port = {port}
https_port = {https_port}
log_level = "info"
[pool]
min_workers = 2
max_workers = 3
[worker]
command = "{TARGET / 'fake-claude'}"
home = "{tmp / 'home'}"
work_root = "{tmp / 'work'}"
[auth]
api_keys = ["{KEY}"]
master_key = "{MASTER}"
admin_password = "{PASSWORD}"
[limits]
rate_limit_requests = 0
"""
    with running_server(tmp, config, port, ready_timeout=60) as url:
        cert = tmp / "certs/server.crt"
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1360,1000", "--force-device-scale-factor=1",
                    f"--user-data-dir={tmp / 'chromium'}",
                    f"--ignore-certificate-errors-spki-list={spki_hash(cert)}"]:
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        driver.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": f"https://localhost:{https_port}",
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
        try:
            yield {"driver": driver, "https": f"https://localhost:{https_port}", "api": url,
                   "log": tmp / "server.log"}
        finally:
            driver.quit()
    shutil.rmtree(tmp, ignore_errors=True)


def wait(driver, timeout=15):
    return WebDriverWait(driver, timeout)


def click(driver, selector):
    """Clicks what `selector` names once it is clickable, finding it again when the
    page redrew it between finding and clicking (the dashboard refreshes itself)."""
    def clicked(drv):
        element = drv.find_element(By.CSS_SELECTOR, selector)
        if not (element.is_displayed() and element.is_enabled()):
            return False
        element.click()
        return True
    WebDriverWait(driver, 15, ignored_exceptions=(NoSuchElementException,
                                                  StaleElementReferenceException)).until(clicked)


def shoot(driver, name):
    IMAGES.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(IMAGES / name))


def test_an_operator_exchanges_a_token_uses_the_key_watches_the_pool_and_revokes_it(console):
    d, https = console["driver"], console["https"]
    d.get(https + "/")
    assert d.execute_script("return window.isSecureContext") is True
    assert d.find_element(By.CSS_SELECTOR, 'meta[name="csrf-token"]').get_attribute("content")
    # A wrong password is refused on the page, without a session.
    d.find_element(By.ID, "password").send_keys("not the password")
    d.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "sign-in-error"), "wrong admin password"))
    assert d.get_cookies() == []
    field = d.find_element(By.ID, "password")
    field.clear()
    field.send_keys(PASSWORD)
    d.find_element(By.CSS_SELECTOR, "#sign-in button[type=submit]").click()
    wait(d).until(EC.presence_of_element_located((By.ID, "exchange")))
    cookie = d.get_cookie("__Host-claude-pool-session")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert d.execute_script("return document.cookie") == "", "the session cookie is HttpOnly"

    # Token exchange: a bad token is explained, a good one gives a key shown once.
    d.find_element(By.ID, "oauth_token").send_keys("sk-ant-api03-wrong-kind")
    d.find_element(By.CSS_SELECTOR, "#exchange button[type=submit]").click()
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "exchange-error"), "sk-ant-oat01-"))
    token_field = d.find_element(By.ID, "oauth_token")
    token_field.clear()
    token_field.send_keys(OAUTH_TOKEN)
    d.find_element(By.ID, "key_alias").send_keys("browser-team")
    d.find_element(By.ID, "models").send_keys("sonnet, haiku")
    d.find_element(By.ID, "duration").send_keys("30d")
    d.find_element(By.ID, "max_budget").send_keys("25")
    d.find_element(By.ID, "rpm_limit").send_keys("120")
    d.find_element(By.CSS_SELECTOR, "#exchange button[type=submit]").click()
    wait(d).until(EC.visibility_of_element_located((By.ID, "new-key-card")))
    key = d.find_element(By.ID, "new-key").text
    assert key.startswith("sk-") and len(key) > 30
    assert d.find_element(By.ID, "oauth_token").get_attribute("value") == "", "the form is cleared"
    d.find_element(By.ID, "copy-key").click()
    wait(d).until(EC.text_to_be_present_in_element((By.ID, "copy-key"), "Copied"))
    copied = d.execute_async_script(
        "const done = arguments[0]; navigator.clipboard.readText().then(done, () => done(null));")
    assert copied == key, "the Copy button put the key on the clipboard"
    assert OAUTH_TOKEN not in d.page_source
    d.execute_script("window.scrollTo(0, 0)")
    shoot(d, "token-exchange.png")

    # The key works with the openai client, on a worker signed in with the exchanged token.
    client = openai.OpenAI(base_url=console["api"] + "/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "[[credential]]"}])
    assert f"credential={OAUTH_TOKEN[-4:]}" in reply.choices[0].message.content

    # While a long turn streams, the dashboard shows its worker busy.
    streamed = []

    def long_turn():
        stream = client.chat.completions.create(
            model="sonnet", stream=True,
            messages=[{"role": "user", "content": "[[slow:40]] [[long]] tell me a story"}])
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                streamed.append(chunk.choices[0].delta.content)

    runner = threading.Thread(target=long_turn)
    runner.start()
    d.get(https + "/admin")
    busy = wait(d).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, "#workers tr.state-busy")))
    fingerprint = busy.find_elements(By.TAG_NAME, "td")[3].text
    assert fingerprint.startswith("sha256:")
    wait(d).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, '#keys tr[data-token] td:nth-child(6)')))
    row = d.find_element(By.XPATH, "//table[@id='keys']//tr[td[1][text()='browser-team']]")
    assert row.find_elements(By.TAG_NAME, "td")[5].text == fingerprint, \
        "the busy worker runs with the key's credential"
    assert "sonnet, haiku" in row.text and "/ $25.00" in row.text
    d.set_window_size(1360, 1500)
    wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#workers tr.state-busy")))
    shoot(d, "pool-dashboard.png")
    runner.join(timeout=60)
    assert len(streamed) > 50

    # A crash shows up in the dashboard's events as it happens.
    with pytest.raises(openai.APIError):
        openai.OpenAI(base_url=console["api"] + "/v1", api_key=KEY, max_retries=0) \
            .chat.completions.create(model="sonnet",
                                     messages=[{"role": "user", "content": "[[crash]]"}])
    wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#events li.crashed")))

    # Key management: filter by alias, revoke with confirmation.
    d.set_window_size(1360, 1000)
    search = d.find_element(By.ID, "key-filter")
    search.send_keys("browser")
    wait(d).until(lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#keys tr[data-token]")) == 1)
    d.execute_script("document.getElementById('keys').scrollIntoView()")
    shoot(d, "key-management.png")
    click(d, '#keys button[data-action="revoke"]')
    click(d, '#keys button[data-action="cancel"]')
    assert client.models.list().data, "cancelled: the key still works"
    click(d, '#keys button[data-action="revoke"]')
    click(d, '#keys button[data-action="confirm-revoke"]')
    wait(d).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#keys tr.key-revoked")))
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "hi"}])

    # Signing out ends the session.
    d.find_element(By.ID, "sign-out").click()
    wait(d).until(EC.presence_of_element_located((By.ID, "sign-in")))
    d.get(https + "/admin")
    wait(d).until(EC.presence_of_element_located((By.ID, "sign-in")))
    logs = console["log"].read_text()
    for secret in (OAUTH_TOKEN, PASSWORD, key):
        assert secret not in logs

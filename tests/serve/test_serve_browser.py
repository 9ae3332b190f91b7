"""The served page in a real browser: headless Chromium uploads a DICOM file.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them
as root) and selenium; skipped without them.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
uvicorn = pytest.importorskip("uvicorn")

from sk_medcnn.serve import create_app  # noqa: E402


def _browser_paths():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no chromium / chromedriver (Debian: apt-get install chromium-driver)"
        )
    return browser, driver


@pytest.fixture
def server(served):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(served[0]), host="127.0.0.1", port=port, log_level="warning"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if time.monotonic() > deadline:
            pytest.fail("the server did not start in 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    instance.should_exit = True
    thread.join(timeout=10)


def test_the_page_predicts_and_explains_a_dicom_file(server, served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser, driver_path = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=webdriver.ChromeService(executable_path=driver_path), options=options
    )
    try:
        driver.get(server)
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: "lesions" in d.find_element(By.ID, "model-name").text)
        assert "Model card" in driver.find_element(By.ID, "card").text
        upload = tmp_path / "head_ct.dcm"
        upload.write_bytes(served[1]["dicom"].read_bytes())
        driver.find_element(By.ID, "file").send_keys(str(upload))
        wait.until(lambda d: d.find_element(By.ID, "result").is_displayed())
        label = driver.find_element(By.ID, "label").text
        assert label in ("lesion", "normal")
        probability = float(driver.find_element(By.ID, "probability").text)
        assert 0.5 <= probability <= 1.0
        warning = driver.find_element(By.ID, "ood")
        assert warning.is_displayed()  # a head CT for a phantom model
        assert "Unlike the training images" in warning.text
        wait.until(
            lambda d: d.execute_script(
                "const i = document.getElementById('overlay');"
                "return !i.hidden && i.complete && i.naturalWidth > 0;"
            )
        )
        shot = tmp_path / "page.png"
        driver.save_screenshot(str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG")
    finally:
        driver.quit()

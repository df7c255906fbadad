"""Headless Chromium against the dashboard (driven by sdk-tests/tests/api/dashboard.rs).

Usage: dashboard.py <endpoint> <cluster> <artifacts dir>

Loads the overview, checks the cluster and its container instance are drawn, prints READY, then
waits (without reloading) for a task chip to appear: the test runs a task through the API after
READY. On failure a screenshot and the page source go to the artifacts directory. Exit 3 means
the tooling (selenium, chromium, chromedriver) is missing.
"""
import os
import shutil
import sys
import time

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError as e:
    print(f"selenium is missing: {e}", file=sys.stderr)
    sys.exit(3)

endpoint, cluster, artifacts = sys.argv[1], sys.argv[2], sys.argv[3]
driver_path = shutil.which("chromedriver")
browser = shutil.which("chromium") or shutil.which("chromium-browser")
if not driver_path or not browser:
    print("chromium and chromium-driver are required (Debian packages)", file=sys.stderr)
    sys.exit(3)

options = webdriver.ChromeOptions()
options.binary_location = browser
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1300,900"):
    options.add_argument(arg)
# An explicit driver path: selenium never tries to download one.
driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def wait_for(what, check, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:  # the DOM is swapped under us while it updates
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def fail(message):
    os.makedirs(artifacts, exist_ok=True)
    driver.save_screenshot(os.path.join(artifacts, "dashboard.png"))
    with open(os.path.join(artifacts, "dashboard.html"), "w") as f:
        f.write(driver.page_source)
    print(f"FAILED: {message} (screenshot in {artifacts})", file=sys.stderr)
    driver.quit()
    sys.exit(1)


try:
    driver.get(endpoint + "/_emulator/")
    wait_for("the cluster section", lambda: driver.find_element(By.ID, "cluster-" + cluster))
    wait_for("a container instance box",
             lambda: driver.find_elements(By.CSS_SELECTOR, f"#cluster-{cluster} .instance"))
    wait_for("the live connection", lambda: driver.find_element(By.TAG_NAME, "body")
             .get_attribute("data-live") == "on")
    if driver.find_elements(By.CSS_SELECTOR, "a.task"):
        fail("a task is shown before any was started")
    marker = driver.execute_script("window.__noReload = 1; return window.__noReload;")
    print("READY", flush=True)
    wait_for("the started task to appear",
             lambda: driver.find_elements(By.CSS_SELECTOR, f"#cluster-{cluster} .instance a.task"))
    if driver.execute_script("return window.__noReload;") != marker:
        fail("the page was reloaded")
    chip = driver.find_elements(By.CSS_SELECTOR, f"#cluster-{cluster} .instance a.task")[0]
    task_id = chip.get_attribute("data-task")
    print(f"TASK {task_id}", flush=True)
    # Follow the link: the task page renders with its containers.
    driver.get(chip.get_attribute("href"))
    wait_for("the task page", lambda: "Task " + task_id in driver.find_element(By.TAG_NAME, "h1").text)
    wait_for("the container row", lambda: "main" in driver.find_element(By.TAG_NAME, "main").text)
    for page in ("/_emulator/ui/load-balancers", "/_emulator/ui/repositories"):
        driver.get(endpoint + page)
        wait_for(page, lambda: driver.find_element(By.TAG_NAME, "h1").text)
except AssertionError as e:
    fail(str(e))
driver.quit()
print("DASHBOARD OK")

"""What the Python benchmarks on `--runtime simulated` share: starting the emulator on its own
port and data dir, and reading its memory from /proc."""
import shutil
import subprocess


def start_emulator(binary, data_dir):
    """Starts the emulator on 127.0.0.1 (a free port) with the simulated runtime; returns the
    process and its endpoint URL (the first line it prints ends with it)."""
    proc = subprocess.Popen(
        [binary, "--runtime", "simulated", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
         "--log-level", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    return proc, line.strip().rsplit(" ", 1)[-1]


def status_kib(pid):
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def stop_emulator(proc, data_dir):
    """Stops the emulator (SIGTERM, then SIGKILL after 10 s) and removes its data dir."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(data_dir, ignore_errors=True)

# Sourced by scripts/demo and scripts/test: installs what the project needs, once.
# Debian packages: mosquitto (the demo's and the tests' broker), rtklib (rnx2rtkp, the GNSS
# reference), systemd (systemd-analyze verify), socat (pty pairs), tmux (tests that read
# what a terminal shows: progress bars, live views), zsh (the zsh completion's tests),
# python3-venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || missing+=(mosquitto)
if [ "${DAQ_SETUP:-full}" = full ]; then
  command -v rnx2rtkp >/dev/null || missing+=(rtklib)
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  command -v socat >/dev/null || missing+=(socat)
  command -v tmux >/dev/null || missing+=(tmux)
  command -v zsh >/dev/null || missing+=(zsh)
fi
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# A virtual environment keeps Debian's externally managed Python untouched; it sees the
# system's packages so that an RTU image with numpy/numba preinstalled does not rebuild them.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${DAQ_EXTRAS:-test}
if [ ! -f "$stamp" ]; then
  echo "setup: installing damwatch-daq and its dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${DAQ_EXTRAS:-test}]"
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"

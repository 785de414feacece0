# The lab's logging proxy (labctl itself), on the pinned Python image from versions.env.
# Built by labctl (`labctl up`, `labctl images build`) without network: the dependencies come from the
# wheelhouse labctl prepares in compose/wheelhouse/ (`labctl images wheelhouse`).
ARG LAB_PYTHON_IMAGE
FROM ${LAB_PYTHON_IMAGE}
# Dependencies first, in their own layer: a change to labctl's code does not reinstall them.
COPY compose/wheelhouse/ /tmp/wheelhouse/
RUN python -m pip install --no-cache-dir --no-index --disable-pip-version-check --root-user-action=ignore \
      --find-links /tmp/wheelhouse -r /tmp/wheelhouse/requirements.txt \
 && rm -rf /tmp/wheelhouse
# Then the package itself, run from its source folder (nothing to install).
WORKDIR /opt/labctl
COPY labctl ./labctl
ENV PYTHONPATH=/opt/labctl PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Compiled here, once: a container writes no bytecode, so every start of the proxy (and every restart a
# fault makes) compiled labctl's modules again: about a fifth of the CPU its imports take.
RUN python -m compileall -q -j 0 labctl && python -c "import labctl.proxy.server"
# lab/ is bind-mounted at /lab/lab by compose (the same files the native runtime uses).
EXPOSE 4317 4318 4320
CMD ["python", "-m", "labctl", "proxy", "serve", "--config", "/lab/lab/proxy/proxy.yaml"]

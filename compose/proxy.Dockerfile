# The lab's logging proxy (labctl itself), on the pinned Python image from versions.env.
ARG LAB_PYTHON_IMAGE
FROM ${LAB_PYTHON_IMAGE}
WORKDIR /opt/labctl
# Dependencies first (cached layer), then the package itself.
COPY pyproject.toml README.md ./
COPY labctl ./labctl
RUN pip install --no-cache-dir . && python -c "import labctl"
# lab/ is bind-mounted at /lab/lab by compose (the same files the native runtime uses).
EXPOSE 4317 4318 4320
CMD ["python", "-m", "labctl", "proxy", "serve", "--config", "/lab/lab/proxy/proxy.yaml"]

# The failover gateway as a container image.
#
#   docker build -t failover:0.1.0 .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/failover.yaml:/etc/failover/failover.yaml:ro" \
#     -e FAILOVER_CONFIG=/etc/failover/failover.yaml -e OPENAI_API_KEY -e FAILOVER_API_KEY \
#     failover:0.1.0
#
# The builder stage turns the source into a wheel and installs it, with its dependencies, into a
# virtualenv; the runtime stage copies only that virtualenv, so neither the source, pip's cache
# nor a compiler reaches the image. Both stages use the same base image, which keeps the
# virtualenv's interpreter path valid. See docs/deploy.md.

ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY pyproject.toml README.md LICENSE MANIFEST.in ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
 && python -m venv /opt/failover \
 && /opt/failover/bin/pip install --no-cache-dir /dist/failover-*.whl

FROM ${PYTHON_IMAGE}
# A numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 failover \
 && useradd --system --uid 10001 --gid failover --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin failover
COPY --from=builder /opt/failover /opt/failover
ENV PATH=/opt/failover/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
# /health/ready answers 503 while the gateway drains, so a stopping container turns unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=2).status != 200)"]
# The config file comes from $FAILOVER_CONFIG (or `serve --config FILE`); without one the gateway
# builds routes from the provider keys in the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY,
# GEMINI_API_KEY), or serves simulated providers when there are none.
ENTRYPOINT ["failover"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

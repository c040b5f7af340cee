# syntax=docker/dockerfile:1
# retailflow: one image for the worker (default) and the HTTP ingress.
#
#   docker build -t retailflow .
#   docker run --rm -e TEMPORAL_ADDRESS=host.docker.internal:7233 retailflow            # worker
#   docker run --rm -p 8080:8080 -e RETAILFLOW_INGRESS_HOST=0.0.0.0 retailflow ingress
#
# Settings come from the environment only (workers/settings.py); no .env file is copied in.

ARG PYTHON_IMAGE=python:3.11-slim

# Build stage: install the project and its dependencies into a virtualenv that the runtime stage
# copies whole, so compilers, pip caches and the sources stay out of the final image.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/retailflow
WORKDIR /src
# What `pip install .` needs: the metadata (its readme is README.md) and the packages that
# [tool.setuptools.packages.find] includes. Tests, bench and tooling stay out.
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY activities/ activities/
COPY workflows/ workflows/
COPY workers/ workers/
COPY simulators/ simulators/
RUN /opt/retailflow/bin/pip install .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/retailflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed numeric uid/gid, so orchestrators can check runAsNonRoot without resolving names.
RUN groupadd --system --gid 10001 retailflow \
    && useradd --system --uid 10001 --gid retailflow --home-dir /app --create-home \
       --shell /usr/sbin/nologin retailflow
COPY --from=build /opt/retailflow /opt/retailflow
WORKDIR /app
USER 10001:10001
# The ingress port (RETAILFLOW_INGRESS_PORT); the worker listens on nothing.
EXPOSE 8080
# The console script from [project.scripts]; the subcommand is the CMD: `worker` unless given.
ENTRYPOINT ["retailflow"]
CMD ["worker"]

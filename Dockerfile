# Stage 1: build the wheel from the checkout (the specs ride inside it).
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build
COPY pyproject.toml README.md ./
COPY protocol_specs ./protocol_specs
COPY kafkacompat ./kafkacompat
RUN python -m build --wheel --outdir /dist .

# Stage 2: only the installed wheel, run by an unprivileged user, data in a volume.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /home/kafkacompat --create-home kafkacompat \
    && mkdir /data && chown kafkacompat /data
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl
USER kafkacompat
WORKDIR /home/kafkacompat
# Clients outside the container dial the mapped port on localhost by default;
# override KAFKACOMPAT_CONFIG_ADVERTISED_LISTENERS when they reach it another way.
ENV KAFKACOMPAT_CONFIG_ADVERTISED_LISTENERS=PLAINTEXT://localhost:9092
EXPOSE 9092
VOLUME /data
# Healthy means a real ApiVersions round trip on the Kafka port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["kafkacompat", "cluster", "info", "--bootstrap-server", "127.0.0.1:9092"]
CMD ["kafkacompat", "serve", "--host", "0.0.0.0", "--port", "9092", "--data-dir", "/data"]

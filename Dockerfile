FROM python:3.11-slim
WORKDIR /opt/kafkacompat
COPY pyproject.toml README.md ./
COPY kafkacompat ./kafkacompat
COPY protocol_specs ./protocol_specs
RUN pip install --no-cache-dir -e .
# Clients outside the container dial the mapped port on localhost by default;
# override KAFKACOMPAT_CONFIG_ADVERTISED_LISTENERS when they reach it another way.
ENV KAFKACOMPAT_CONFIG_ADVERTISED_LISTENERS=PLAINTEXT://localhost:9092
EXPOSE 9092
VOLUME /data
CMD ["kafkacompat", "serve", "--host", "0.0.0.0", "--port", "9092", "--data-dir", "/data"]

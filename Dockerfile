# clvstream worker image.
#
#   docker build -t clvstream:local .
#   docker run --rm -p 6066:6066 -e CLV_BROKER=kafka://broker:9092 clvstream:local            # a worker
#   docker run --rm clvstream:local show-settings                                             # any CLI command
#
# Every setting is a CLV_* environment variable (docs/configuration.md). The image
# binds the web server (/metrics, /health) to all interfaces on CLV_WEB_PORT (6066)
# and keeps RocksDB state in CLV_DATA_DIR=/var/lib/clvstream: mount a volume there.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLV_DATA_DIR=/var/lib/clvstream \
    CLV_WEB_HOST=0.0.0.0 \
    CLV_WEB_PORT=6066

# Unprivileged user with a fixed numeric id (Kubernetes runAsNonRoot can verify it).
RUN groupadd --system --gid 10001 clvstream \
    && useradd --system --uid 10001 --gid clvstream --create-home --home-dir /home/clvstream \
       --shell /usr/sbin/nologin clvstream \
    && install -d -o clvstream -g clvstream -m 0750 /var/lib/clvstream

WORKDIR /app

# Dependencies first (their own layer, rebuilt only when pyproject.toml changes).
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
       > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, installed in place (-e). The JSON Schema contract lives in
# schemas/; streams/schemas is a link to it (a wheel install ships the files).
COPY schemas ./schemas
COPY streams ./streams
RUN pip install --no-cache-dir --no-deps -e . \
    && python -c "import streams.core.validation as v; v.validator('order')"

USER 10001:10001

EXPOSE 6066

HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CLV_WEB_PORT', '6066'), timeout=4).read()"]

ENTRYPOINT ["clvstream"]
CMD ["worker", "-l", "info"]

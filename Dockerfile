# One image; web, worker and scheduler are its commands (see docker-compose.yml and the Procfile).
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-liberation fonts-dejavu-core fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/arbill
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .

ENV ARBILL_ENV=production FLASK_APP=wsgi.py PYTHONUNBUFFERED=1 BIND_HOST=0.0.0.0 PORT=8000
RUN useradd --system --home /srv/arbill arbill && chown -R arbill /srv/arbill
USER arbill
EXPOSE 8000

# Boot step: migrate, then start the process named by the command (default: web).
ENTRYPOINT ["/srv/arbill/scripts/docker-entrypoint.sh"]
CMD ["web"]

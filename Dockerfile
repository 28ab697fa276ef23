FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY . /app
RUN pip install .

# Run as an unprivileged user.
RUN useradd --create-home --uid 10001 app
USER app

CMD ["python", "worker.py"]

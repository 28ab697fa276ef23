FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY . /app
# bytecode at build time: PYTHONDONTWRITEBYTECODE stops writing it at run time, and
# every worker would otherwise compile the sources again on each start
# no extras: the local Temporal servers (the `local` extra) and test tools stay out
RUN pip install . && python -m compileall -q /app

# Run as an unprivileged user.
RUN useradd --create-home --uid 10001 app
USER app

CMD ["python", "worker.py"]

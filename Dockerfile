# pgfanout in a container: build on Debian 12 with its packages, run on a slim Debian 12
# with only the runtime libraries. `docker build -t pgfanout .`
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends meson ninja-build \
      pkg-config g++ libpq-dev libboost-dev librocksdb-dev libspdlog-dev libfmt-dev \
      libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libssl-dev && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN meson setup /build /src -Dtests=false -Dbuildtype=release -Dprefix=/usr \
    && ninja -C /build && DESTDIR=/out meson install -C /build --no-rebuild

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 librocksdb7.8 \
      libspdlog1.10 libfmt9 libyaml-cpp0.7 libssl3 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/pgfanout --create-home pgfanout
COPY --from=build /out/ /
USER pgfanout
WORKDIR /var/lib/pgfanout
EXPOSE 8686
# SIGTERM: stop reading, finish or abandon in-flight batches within shutdown_timeout, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/pgfanout"]
CMD ["run", "--config", "/etc/pgfanout/pgfanout.yaml"]

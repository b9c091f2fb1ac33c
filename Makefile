# Hookbridge developer and CI entry points. README.md, "Tests and benchmarks", names the test tiers.

GO        ?= go
BIN       ?= bin/hookbridge

.PHONY: all build test vet unit demo e2e kafka-start kafka-stop clean

all: build

# The bridge and the first-party plugins (docs/plugins.md), side by side.
# Static and -trimpath, as in the image: they run on any Linux of their
# architecture (no libc needed) and hold no path of the machine that built them.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/hookbridge
	CGO_ENABLED=0 $(GO) build -trimpath -o $(dir $(BIN))hookbridge-redis ./plugins/redis
	CGO_ENABLED=0 $(GO) build -trimpath -o $(dir $(BIN))hookbridge-postgres ./plugins/postgres

vet:
	$(GO) vet ./...

# Tiers 1 and 2: unit and in-process integration tests (only Go needed).
# Under the race detector when cgo is available (it needs a C compiler, as
# .ci/run's machine has); without one, cgo is off and the tests run plain.
RACE := $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && echo -race)
test: vet
	$(GO) test $(RACE) -count=1 ./...

demo:
	$(GO) run ./cmd/hookbridge demo

# Tier 3: real Apache Kafka (KRaft, from Maven jars) + go test ./test/...
# ./plugins/... and the real-Kafka tests of ./bridge/kafka;
# the broker is stopped even when the tests fail.
e2e:
	bash test/e2e.sh

kafka-start:
	bash test/kafka/start.sh

kafka-stop:
	bash test/kafka/stop.sh

clean:
	rm -rf bin

# Wire protocol: regenerates the Go package sdk/handlerpb and the Python stubs
# of examples/plugin-python from sdk/proto. Needs protoc (Debian:
# apt-get install -y protobuf-compiler) and python3; the pinned code
# generators are installed into bin/tools.
PROTO_TOOLS                ?= $(CURDIR)/bin/tools
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2
GRPCIO_TOOLS_VERSION       ?= 1.85.1
HANDLER_PROTO              := hookbridge/handler/v1/handler.proto

.PHONY: proto
proto:
	@command -v protoc >/dev/null || { echo "proto: protoc not found; run apt-get install -y protobuf-compiler" >&2; exit 1; }
	GOBIN=$(PROTO_TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(PROTO_TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	protoc -I sdk/proto \
		--plugin=protoc-gen-go=$(PROTO_TOOLS)/protoc-gen-go \
		--plugin=protoc-gen-go-grpc=$(PROTO_TOOLS)/protoc-gen-go-grpc \
		--go_out=. --go_opt=module=github.com/hookbridge/hookbridge \
		--go-grpc_out=. --go-grpc_opt=module=github.com/hookbridge/hookbridge \
		sdk/proto/$(HANDLER_PROTO)
	test -x $(PROTO_TOOLS)/pyvenv/bin/python || python3 -m venv $(PROTO_TOOLS)/pyvenv
	$(PROTO_TOOLS)/pyvenv/bin/pip install -q grpcio-tools==$(GRPCIO_TOOLS_VERSION)
	$(PROTO_TOOLS)/pyvenv/bin/python -m grpc_tools.protoc -I sdk/proto \
		--python_out=examples/plugin-python --pyi_out=examples/plugin-python \
		--grpc_python_out=examples/plugin-python \
		sdk/proto/$(HANDLER_PROTO)

# Deployment files (deploy/): Dockerfiles, compose and the Helm chart, checked
# without a container engine or cluster. Builds helm and the checker into
# test/tools/.bin the first time (several minutes cold), then reuses them.
.PHONY: deploy-check
deploy-check:
	bash deploy/check.sh

# make test: everything CI runs. make run: estd on https://127.0.0.1:8443.
GO ?= go
# Builds and tests use Go 1.27.3, which the go command fetches once from the
# module proxy: it carries the standard-library security fixes govulncheck
# asks for. go.mod stays at 1.26, so a plain `go build` with Go 1.26 works too.
export GOTOOLCHAIN ?= go1.27.3

.PHONY: test deps vet lint unit run build fuzz bench

test: deps vet lint unit

deps:
	@./scripts/deps.sh

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# staticcheck and govulncheck (see scripts/lint.sh).
lint:
	@./scripts/lint.sh

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

build:
	$(GO) build -o bin/ ./cmd/...

run:
	$(GO) run ./cmd/estd

# Benchmarks: Go benchmarks plus estd under est bench on loopback; writes
# BENCHMARKS.md (see scripts/bench.sh). Not part of make test.
bench:
	@./scripts/bench.sh

# Fuzz every target of every package for FUZZTIME each (not part of make
# test, which runs the seed corpora). New interesting inputs are minimized
# for at most FUZZMINIMIZETIME, so the time goes to fuzzing. A crasher is
# written to the package's testdata/fuzz/<Target>/: commit it.
FUZZTIME ?= 20s
FUZZMINIMIZETIME ?= 5s
fuzz:
	@list=$$($(GO) test -list '^Fuzz' ./...) || { echo "$$list"; exit 1; }; \
	echo "$$list" | awk '/^Fuzz/ { t[n++] = $$1; next } /^ok / { for (i = 0; i < n; i++) print $$2, t[i]; n = 0 }' | \
	while read pkg target; do \
	  echo "fuzz $$target ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg || exit 1; \
	done

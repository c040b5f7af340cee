#!/bin/sh
# One-shot (service temporal-create-namespace): wait until the frontend serves, then register the
# namespace once. temporalio/server, unlike the old auto-setup image, creates no namespace itself.
set -eu

ADDRESS=${TEMPORAL_ADDRESS:-temporal:7233}
NAMESPACE=${DEFAULT_NAMESPACE:-default}
RETENTION=${DEFAULT_NAMESPACE_RETENTION:-720h}

tries=0
until temporal operator cluster health --address "$ADDRESS"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "Temporal at $ADDRESS is still not serving after $tries tries" >&2
    exit 1
  fi
  sleep 2
done

if temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "namespace $NAMESPACE exists"
else
  temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" \
    --retention "$RETENTION" --description "retailflow"
  echo "namespace $NAMESPACE created (retention $RETENTION)"
fi

#!/usr/bin/env bash
# Makes the compose deployment's secrets (never committed; compose/secrets/ is in .gitignore):
#   ca.key, ca.pem            a private CA (10 years) that signs the broker's certificate; ca.pem is what clients trust
#   kafka.p12                 the broker's key + certificate (SAN: kafka, localhost) for its SASL_SSL listeners
#   credentials.toml          every principal's SCRAM password ([principals.<name>] password), mode 600
#   kafka.env                 for the kafka container: the keystore password, the admin password and the
#                             --add-scram arguments that bootstrap the SCRAM users at storage format
#   admin-client.properties   SASL_SSL client config (admin) for the broker's health check and Kafka's CLI tools
# Usage: compose/make-secrets.sh [DIR]   (default compose/secrets; existing files are kept: delete DIR to rotate)
# Needs openssl and the project's venv (scripts/setup.sh). A deployment with its own PKI replaces ca.pem/kafka.p12.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-compose/secrets}"
BORDERFUSE="${BORDERFUSE:-.venv/bin/borderfuse}"
umask 077
mkdir -p "$DIR"
command -v openssl >/dev/null || { echo "make-secrets: openssl not found (apt-get install -y openssl)" >&2; exit 1; }

if [ ! -f "$DIR/ca.pem" ]; then
    openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=borderfuse deployment CA" \
        -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
fi
if [ ! -f "$DIR/kafka.p12" ]; then
    openssl req -newkey rsa:3072 -nodes -subj "/CN=kafka" -keyout "$DIR/kafka.key" -out "$DIR/kafka.csr" 2>/dev/null
    printf 'subjectAltName=DNS:kafka,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$DIR/kafka.ext"
    openssl x509 -req -in "$DIR/kafka.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -days 825 \
        -extfile "$DIR/kafka.ext" -out "$DIR/kafka.crt" 2>/dev/null
    openssl rand -hex 24 > "$DIR/keystore.password"
    openssl pkcs12 -export -in "$DIR/kafka.crt" -inkey "$DIR/kafka.key" -certfile "$DIR/ca.pem" -name kafka \
        -passout "file:$DIR/keystore.password" -out "$DIR/kafka.p12"
    rm -f "$DIR/kafka.csr" "$DIR/kafka.ext" "$DIR/kafka.key" "$DIR/kafka.crt" "$DIR/ca.srl"
fi

# The plate pseudonymisation key (HMAC, 32 bytes as hex; privacy.plate_key_file), kept when already there:
# a new key is a key rotation (give it a new privacy.plate_key_id in borderfuse.toml).
[ -s "$DIR/plate-key" ] || (umask 077; openssl rand -hex 32 > "$DIR/plate-key")

# SCRAM passwords for every principal of the sectors file (kept when already there).
BORDERFUSE_KAFKA__CREDENTIALS_FILE="$DIR/credentials.toml" "$BORDERFUSE" broker credentials >/dev/null

"$(dirname "$BORDERFUSE")/python" - "$DIR" <<'PY'
import sys
from pathlib import Path
from borderfuse.ingest.kafka_security import load_credentials

out = Path(sys.argv[1])
creds = load_credentials(out / "credentials.toml")
keystore = (out / "keystore.password").read_text().strip()
admin = creds["admin"]
scram = " ".join(f"--add-scram SCRAM-SHA-512=[name={n},password={p}]" for n, p in creds.items())
(out / "kafka.env").write_text(f"KEYSTORE_PASSWORD={keystore}\nADMIN_PASSWORD={admin}\nSCRAM_ARGS={scram}\n")
(out / "admin-client.properties").write_text(
    "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
    f'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="{admin}";\n'
    "ssl.truststore.type=PEM\nssl.truststore.location=/etc/kafka/secrets/ca.pem\n")
PY
chmod 600 "$DIR"/*
# The service image runs as uid 10001 and the kafka image as uid 1000: they must be able to read their files.
if [ "$(id -u)" -eq 0 ]; then
    chown 10001 "$DIR/credentials.toml" "$DIR/plate-key"
    chown 1000 "$DIR/kafka.p12" "$DIR/kafka.env" "$DIR/admin-client.properties"
    chmod 644 "$DIR/ca.pem"
else
    echo "make-secrets: as root, let the containers read their files:" \
         "chown 10001 $DIR/credentials.toml $DIR/plate-key; chown 1000 $DIR/kafka.p12 $DIR/admin-client.properties; chmod 644 $DIR/ca.pem" >&2
fi
echo "make-secrets: secrets in $DIR (CA: $DIR/ca.pem)" >&2

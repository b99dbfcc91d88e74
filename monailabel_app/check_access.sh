#!/usr/bin/env bash
# A running reading room seen from another address, as from another workstation: a second network namespace
# joined to this one by a veth pair (10.203.0.1 here, 10.203.0.2 there). From there: every route the proxy
# serves, anonymous and with a wrong password; plain HTTP; Orthanc's and MONAI Label's ports. One line per
# request, then the count of requests answered with data (must be 0). Needs root (ip netns) and curl.
#   sudo bash monailabel_app/check_access.sh READING_ROOM_FOLDER
# (the room started with --listen 0.0.0.0:PORT, or --listen 10.203.0.1:PORT)
set -euo pipefail
folder="${1:?usage: check_access.sh READING_ROOM_FOLDER}"
read -r port orthanc_port ml_port < <(python3 - "$folder/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(s["listen"].rsplit(":", 1)[1], s["parts"]["orthanc"]["url"].rsplit(":", 1)[1], s["parts"]["monailabel"]["url"].rsplit(":", 1)[1])
PY
)
ns="spcxr-access-$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; ip link del "v$$h" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip link add "v$$h" type veth peer name "v$$n"
ip link set "v$$n" netns "$ns"
ip addr add 10.203.0.1/24 dev "v$$h" && ip link set "v$$h" up
ip netns exec "$ns" ip addr add 10.203.0.2/24 dev "v$$n"
ip netns exec "$ns" ip link set "v$$n" up
ip netns exec "$ns" ip link set lo up
host=10.203.0.1
answered=0
total=0
try() {  # what, curl arguments...: counts an answer carrying data (2xx, or a body naming the app or a study)
    local what="$1"; shift
    local out code
    out=$(ip netns exec "$ns" curl -sk -m 10 -o /tmp/check_access_body.$$ -w '%{http_code}' "$@" || true)
    code="${out:-000}"
    total=$((total + 1))
    if [[ "$code" =~ ^2 ]] || grep -qs -e spcxr -e StudyInstanceUID /tmp/check_access_body.$$; then
        answered=$((answered + 1)); echo "ANSWERED $code  $what"
    else
        echo "refused  $code  $what"
    fi
}
for route in / /ohif/ /info/ "/datastore/?output=all" /proxy/dicom/qido/studies /logs/ /model/ /docs /openapi.json \
        /system /dicom-web/studies; do
    try "GET $route anonymous" "https://$host:$port$route"
    try "GET $route wrong password" -u alice:wrong-password "https://$host:$port$route"
done
for route in "/infer/lung_segmentation?image=x" /activelearning/random; do
    try "POST $route anonymous" -X POST "https://$host:$port$route"
done
try "PUT /datastore/label anonymous" -X PUT "https://$host:$port/datastore/label?image=x&tag=final"
try "plain HTTP /info/" "http://$host:$port/info/"
try "Orthanc REST, no credentials" "http://$host:$orthanc_port/system"
try "Orthanc DICOMweb, no credentials" "http://$host:$orthanc_port/dicom-web/studies"
try "MONAI Label's port" "http://$host:$ml_port/info/"
rm -f /tmp/check_access_body.$$
echo "$answered of $total requests from 10.203.0.2 (another network namespace) to $host answered with data"
[ "$answered" -eq 0 ]

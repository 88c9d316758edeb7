"""Run by upstream atdata 0.7.0b1's Python: load ``@handle/name[@version]`` the documented way.

Usage: python _upstream_by_name.py PDS_URL DID @HANDLE/NAME[@VERSION]  -> JSON lines of samples.

Upstream resolves every DID at plc.directory (hard-wired, unreachable here), so the DID -> PDS
answer is put in its cache first; everything else is upstream's own path: label resolution,
entry, schema -> type, blob URLs, webdataset reading.
"""

import json
import sys

import numpy as np

import atdata
import atdata.atmosphere as upstream_atmosphere
from atdata.atmosphere import Atmosphere

url, did, path = sys.argv[1:4]
upstream_atmosphere._pds_endpoint_cache[did] = url
index = atdata.Index(atmosphere=Atmosphere(base_url=url))
ds = atdata.load_dataset(path, index=index, split="train")
for s in ds.ordered():
    row = {}
    for k, v in vars(s).items():
        if k.startswith("_"):
            continue
        row[k] = v.tolist() if isinstance(v, np.ndarray) else v
    print(json.dumps(row, sort_keys=True))

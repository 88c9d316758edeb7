"""Run by upstream atdata 0.7.0b1's Python: read an entry we published; print JSON lines.

Usage: python _upstream_load.py PDS_URL ENTRY_URI
"""

import json
import shutil
import sys
import tempfile
import urllib.request

from numpy.typing import NDArray

import atdata
from atdata.atmosphere import Atmosphere, DatasetLoader


@atdata.packable
class UpRow:
    idx: int
    name: str
    vec: NDArray


url, uri = sys.argv[1:3]
loader = DatasetLoader(Atmosphere(base_url=url))
print(json.dumps({"storage": loader.get_storage_type(uri), "metadata": loader.get_metadata(uri)}))
# to_dataset() resolves the DID at plc.directory (hard-wired upstream, offline here), so build the
# getBlob URLs from the entry's blob refs against the same PDS and read them with upstream's Dataset
did = uri[len("at://") :].split("/", 1)[0]
cids = [b["blob"]["ref"]["$link"] for b in loader.get_blobs(uri)]
tmp = tempfile.mkdtemp()
for i, c in enumerate(cids):
    blob_url = f"{url}/xrpc/com.atproto.sync.getBlob?did={did}&cid={c}"
    urllib.request.urlretrieve(blob_url, f"{tmp}/shard-{i:03d}.tar")
for s in atdata.Dataset[UpRow](f"{tmp}/shard-{{000..{len(cids) - 1:03d}}}.tar").ordered():
    print(json.dumps({"idx": s.idx, "name": s.name, "vec": s.vec.tolist()}))
shutil.rmtree(tmp)

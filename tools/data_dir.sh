# Sourced by tools/test.sh and tools/main.sh: sets CBINFER_DATA_DIR to a folder
# holding data/video/*.avi and models/*, fetching them if none is found.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${CBINFER_DATA_DIR:-}" ]; then
  if [ -f "$here/../shared/data/video/vtest.avi" ]; then
    CBINFER_DATA_DIR="$(cd "$here/../shared" && pwd)"
  else
    CBINFER_DATA_DIR="$here/data-cache"
  fi
fi
if [ ! -f "$CBINFER_DATA_DIR/data/video/vtest.avi" ] ||
   [ ! -f "$CBINFER_DATA_DIR/models/waifu2x-vgg7/noise1_model.json" ]; then
  bash "$here/tools/fetch_data.sh" "$CBINFER_DATA_DIR"
fi
export CBINFER_DATA_DIR

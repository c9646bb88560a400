"""The report's figures as one offline HTML page, with what they share written once.

plotly.js (about 4.8 MB) is most of any offline plotly page: it is inlined once,
gzip-compressed (about 2 MB as base64), and the browser unpacks it with its own
``DecompressionStream`` (every current browser has it) before drawing the figures. The
figures' common template (about 8 KB a figure, the same for all) is written once too; each
figure keeps only its data and layout.
"""

from __future__ import annotations

import base64
import gzip
import json
from functools import lru_cache

import plotly.io as pio
from plotly.offline import get_plotlyjs

# Unpacks plotly.js, then draws each figure in its div with the shared template.
DRAW = """<script>
(async () => {
  const packed = document.getElementById("sweep-plotly").textContent;
  const bytes = Uint8Array.from(atob(packed), c => c.charCodeAt(0));
  const unpacked = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const script = document.createElement("script");
  script.textContent = await new Response(unpacked).text();
  document.head.appendChild(script);
  const {template, figures} = JSON.parse(document.getElementById("sweep-figures").textContent);
  figures.forEach((figure, i) => Plotly.newPlot(`sweep-figure-${i}`, figure.data,
    Object.assign({template: template}, figure.layout), {responsive: true}));
})().catch(err => document.getElementById("sweep-figures-note").textContent =
  `The figures could not be drawn in this browser (${err}); open the report in a current one.`);
</script>"""


@lru_cache(maxsize=1)
def plotly_js_packed() -> str:
    """plotly.js, gzip-compressed and base64-encoded (the same bytes on every call)."""
    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), 9, mtime=0)).decode()


def figures_html(figures: list) -> str:
    """The figures' divs, their data, plotly.js and the script that draws them."""
    specs, template = [], None
    for fig in figures:
        spec = json.loads(pio.to_json(fig, validate=False))
        own = spec["layout"].pop("template", None)
        if template is None:
            template = own
        elif own != template:  # a figure with a template of its own keeps it
            spec["layout"]["template"] = own
        specs.append({"data": spec["data"], "layout": spec["layout"]})
    divs = "".join(f"<div id='sweep-figure-{i}'></div>" for i in range(len(specs)))
    data = json.dumps({"template": template, "figures": specs}).replace("</", "<\\/")
    return (f"<p id='sweep-figures-note'></p>{divs}"
            f"<script type='application/json' id='sweep-figures'>{data}</script>"
            f"<script type='text/plain' id='sweep-plotly'>{plotly_js_packed()}</script>{DRAW}")

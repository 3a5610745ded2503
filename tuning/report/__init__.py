"""Job reports: data extracted from the tracking store (``data``), figures (``plots``),
report sections, the HTML page (``html``) and the whole report (``build``)."""

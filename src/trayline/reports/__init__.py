"""Reports: what happened on the line, as rows a person or a spreadsheet can read."""

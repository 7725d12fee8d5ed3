"""Dunning: payment reminders by days past due (levels.py pure; service.py writes and sends; document.py the PDF)."""

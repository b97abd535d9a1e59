"""perfmodel dashboard (Streamlit): `perfmodel app` runs app/Home.py."""

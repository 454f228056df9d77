"""The interactive dashboard (Streamlit): `gpt2atlas app --model M`."""

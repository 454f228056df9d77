"""The file `streamlit run` executes: `gpt2atlas app --model M` runs `streamlit run <this file> -- --model M`."""

from gpt2atlas.app.main import main

main()

{{ js "\u007f\u0080\u00a0" }}|{{ html "\u0000" }}|{{ urlquery "\u0000" }}|{{ js "\u0000\u001f" }}

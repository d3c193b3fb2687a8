{{ true }} {{ false }} {{ print nil }} {{ printf "%v" nil }}

{{ printf "%c%c" 'h' 105 }} {{ printf "%d %q" 'x' 'y' }} {{ printf "%U" 'é' }}

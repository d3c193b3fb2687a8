{{ sprig_div 1 0 }}

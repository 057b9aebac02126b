# curves.gp: the training curve of one run (a file written by `lcgbench run --log-csv`): the
# training loss (and any validation loss@L) against step on top, the validation scores
# (exact@L, token@L, bleu@L) against step below. Writes <out>.png and <out>.svg.
#   gnuplot -e "data='curve.csv'; out='figures/curve'; cols='`head -1 curve.csv | tr , ' '`'" plots/curves.gp
# cols: the header's column names, space-separated (gnuplot cannot read them itself).
if (!exists("data") || !exists("out") || !exists("cols")) { print "curves.gp: set data, out and cols (see the header)"; exit status 2 }
if (!exists("title")) title = data
set datafile separator ","
set datafile missing ""
n = words(cols)
# columns by name: run_id (when there), step, loss, lr, grad_norm, tok_s (the last three when
# there: bench/torch_copy_train.py's curves have lr only), then the scores
st = 0; ls = 0; first = 0
do for [i=1:n] { w = word(cols, i); if (w eq "step") { st = i }; if (w eq "loss") { ls = i }; \
  if (w eq "step" || w eq "loss" || w eq "lr" || w eq "grad_norm" || w eq "tok_s") { first = i + 1 } }
if (st == 0 || ls == 0 || first > n) { print "curves.gp: ".data." has no step or loss column, or no score"; exit status 2 }
isloss(i) = strstrt(word(cols, i), "loss@") == 1
do for [t in "pngcairo svg"] {
  if (t eq "svg") { set terminal svg size 900,640 dynamic font "Sans,12"; set output out.".svg" } \
  else { set terminal pngcairo size 900,640 font "Sans,10"; set output out.".png" }
  set multiplot layout 2,1 title title noenhanced
  set grid
  set key outside right top noenhanced
  set xlabel ""
  set ylabel "loss"
  set logscale y
  plot data using st:ls title "train loss" with lines lw 1.5, \
       for [i=first:n] data using st:(isloss(i) ? column(i) : NaN) title (isloss(i) ? word(cols, i) : "") \
         with linespoints pt 7 ps 0.6 lc (i - first + 6)
  unset logscale y
  set xlabel "step"
  set ylabel "validation score"
  set yrange [-0.02:1.02]
  plot for [i=first:n] data using st:(isloss(i) ? NaN : column(i)) title (isloss(i) ? "" : word(cols, i)) \
         with linespoints pt 7 ps 0.6 lc (i - first + 6)
  set autoscale y
  unset multiplot
  set output
}

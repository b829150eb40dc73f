my ($f, $tag, $cg) = splice(@ARGV, 0, 3);
for my $p (split / /, $cg) { if (open(my $h, ">>", $p)) { print $h "$$\n"; close $h } }
my $ra = delete $ENV{MESOSLITE_RUN_AS};
my @sigs = qw(TERM INT HUP);
$SIG{$_} = "IGNORE" for @sigs;
my $pid = fork();
if (!defined $pid) { print STDERR "mesoslite: cannot fork: $!\n"; exit 127 }
if ($pid == 0) {
  $SIG{$_} = "DEFAULT" for @sigs;
  if (defined $ra) {
    my ($u, $g, $gs) = split / /, $ra, 3; my @gs = split /,/, ($gs // "");
    $) = join(" ", $g, @gs ? @gs : $g); $( = $g; ($<, $>) = ($u, $u);
    if ($< != $u || $> != $u || $( + 0 != $g || $u <= 0) {
      print STDERR "mesoslite: cannot switch to $ra: $!\n"; exit 127;
    }
  }
  exec { $ARGV[0] } @ARGV;
  print STDERR "mesoslite: cannot execute $ARGV[0]: $!\n"; exit 127;
}
waitpid($pid, 0);
my $s = $?; my $sig = $s & 127; my $code = $sig ? -$sig : $s >> 8;
if (length $f && open(my $h, ">>", $f)) { syswrite($h, "$tag $code\n"); close $h }
if ($sig) { $SIG{$_} = "DEFAULT" for @sigs; kill $sig, $$; exit(128 + $sig) }
exit($s >> 8);
